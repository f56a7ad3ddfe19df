// The sample browser of `aidsafe report`. Plain JS, no library, nothing fetched.
// Sample text is adversarial by nature: it only ever reaches the page through textContent,
// never innerHTML, so a prompt holding a script element is shown as text and never runs.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("aidsafe-samples").textContent);
  var samples = data.samples;
  // Policy id -> {title, rule} as the run used them (empty for a run older than that snapshot).
  var policies = data.policies || {};
  var list = document.getElementById("sample-list");
  var detail = document.getElementById("sample-detail");
  var search = document.getElementById("search");
  var filters = document.getElementById("filters");
  var count = document.getElementById("match-count");

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function isPolicy(t) { return Object.prototype.hasOwnProperty.call(policies, t); }

  // A tag; one naming a policy carries its title and rule as a tooltip.
  function tag(t) {
    var node = el("span", "tag", t);
    if (isPolicy(t)) {
      node.className = "tag policy";
      node.title = t + " · " + policies[t].title + ": " + policies[t].rule;
    }
    return node;
  }

  // Lower-cased text of a sample, for the search box.
  samples.forEach(function (s) {
    var parts = [s.id, s.title];
    s.sections.forEach(function (sec) {
      sec.rows.forEach(function (r) { parts.push(r.text, r.label, r.tags.join(" ")); });
    });
    s._haystack = parts.join("\n").toLowerCase();
  });

  // One <select> per facet (stop reason, policy, rejection, ...), its options the values seen.
  var facetNames = [];
  var facetValues = {};
  samples.forEach(function (s) {
    Object.keys(s.facets).forEach(function (name) {
      if (!(name in facetValues)) { facetNames.push(name); facetValues[name] = {}; }
      s.facets[name].forEach(function (v) { if (v !== "") facetValues[name][v] = true; });
    });
  });
  var selects = {};
  facetNames.forEach(function (name) {
    var label = el("label", "facet", name + " ");
    var select = el("select");
    select.setAttribute("data-facet", name);
    select.appendChild(el("option", "", "(any)")).value = "";
    Object.keys(facetValues[name]).sort().forEach(function (v) {
      select.appendChild(el("option", "", isPolicy(v) ? v + " · " + policies[v].title : v)).value = v;
    });
    select.addEventListener("change", refresh);
    label.appendChild(select);
    filters.appendChild(label);
    selects[name] = select;
  });

  function matches(s) {
    var q = search.value.trim().toLowerCase();
    if (q && s._haystack.indexOf(q) < 0) return false;
    return facetNames.every(function (name) {
      var want = selects[name].value;
      return !want || (s.facets[name] || []).indexOf(want) >= 0;
    });
  }

  function show(s) {
    detail.textContent = "";
    detail.appendChild(el("h2", "", s.title || "(no prompt)"));
    detail.appendChild(el("div", "sample-id", "id " + s.id));
    var cited = [];
    s.sections.forEach(function (sec) {
      var box = el("section", "sample-section");
      box.appendChild(el("h3", "", sec.title + " (" + sec.rows.length + ")"));
      sec.rows.forEach(function (r) {
        var row = el("div", "row");
        if (r.label) row.appendChild(el("span", "label", r.label));
        row.appendChild(el("span", "text", r.text));
        r.tags.forEach(function (t) {
          row.appendChild(tag(t));
          if (isPolicy(t) && cited.indexOf(t) < 0) cited.push(t);
        });
        box.appendChild(row);
      });
      detail.appendChild(box);
    });
    if (cited.length) {  // the rules this sample's tags name, spelled out (hover needs a mouse)
      var legend = el("section", "sample-section policies");
      legend.appendChild(el("h3", "", "Policies cited (" + cited.length + ")"));
      cited.sort().forEach(function (id) {
        var row = el("div", "row");
        row.appendChild(el("span", "label", id + " · " + policies[id].title));
        row.appendChild(el("span", "text", policies[id].rule));
        legend.appendChild(row);
      });
      detail.appendChild(legend);
    }
    Array.prototype.forEach.call(list.children, function (item) {
      item.classList.toggle("current", item.getAttribute("data-id") === s.id);
    });
  }

  function refresh() {
    list.textContent = "";
    var shown = samples.filter(matches);
    shown.forEach(function (s) {
      var item = el("li", "sample-item");
      item.setAttribute("data-id", s.id);
      item.appendChild(el("span", "sample-id", s.id));
      item.appendChild(el("span", "sample-title", s.title));
      var status = (s.facets.status || [""])[0];
      if (status === "rejected") item.appendChild(el("span", "tag rejected", (s.facets.rejection || [""])[0]));
      item.addEventListener("click", function () { show(s); });
      list.appendChild(item);
    });
    count.textContent = shown.length + " of " + samples.length + " shown";
    if (shown.length) show(shown[0]); else detail.textContent = "No sample matches.";
  }

  search.addEventListener("input", refresh);
  refresh();
  // The marker the browser test reads from the DOM once this script ran to the end.
  document.body.setAttribute("data-report-ready", String(samples.length));
})();
