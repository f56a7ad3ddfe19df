"""AIDSAFE generation: recipe, policies, agent cards, agents, roles, the graph, dedup, the runner."""
