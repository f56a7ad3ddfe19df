"""Configuration: the one YAML loader (file:line errors), --set overrides, path-or-built-in resources."""
