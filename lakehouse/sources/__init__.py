"""Source systems: what they deliver into the landing folder (contracts) and simulated worlds.

* ``contract``: ``LandingSource`` (one feed: format, typed columns, key, rules) and the landing
  folder layout shared by every source system.
* ``writer``: atomic writes of landing files.
* ``rng``: named, reproducible random streams shared by the simulators.
* ``saas``: the SaaS company's six feeds and its deterministic simulator (``docs/simulator.md``).
* ``lending``: a consumer lender's five feeds and its deterministic simulator (``docs/lending.md``).
"""
