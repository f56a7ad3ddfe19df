"""A custom Python agent for the deliberator role: an over-refusal reviewer.

Plug it into a recipe by reference (see examples/custom_recipe.yaml):

    agents:
      deliberators:
        - {agent: deliberator, name: safety_reviewer}
        - examples/custom_agent.py:OverRefusalReviewer

An agent is any object with a `name` and `async __call__(state, ctx)` returning its role's
output model (here `DeliberationTurn`). It can ask the teacher through `ctx.generate`, which
validates the reply, re-asks on errors and records provenance; or build the output itself.
"""

from __future__ import annotations

from aidsafe.agents import AgentContext, DeliberationTurn


class OverRefusalReviewer:
    name = "over_refusal_reviewer"

    async def __call__(self, state: dict, ctx: AgentContext) -> DeliberationTurn:
        values = ctx.template_values(state, self.name)
        messages = [
            {
                "role": "system",
                "content": "You review safety reasoning for over-refusal only. Policies:\n\n" + values["policies"],
            },
            {
                "role": "user",
                "content": (
                    f"User prompt:\n{values['prompt']}\n\nThoughts so far:\n{values['thoughts']}\n\n"
                    f"Current response:\n{values['response']}\n\n"
                    "If the response refuses something the policies allow, add a thought citing the "
                    "helpfulness policy and give a more helpful response. Otherwise agree: set "
                    '"complete" to true and keep the response. Reply with JSON only.'
                ),
            },
        ]
        return await ctx.generate(self.name, messages, state)
