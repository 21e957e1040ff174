"""Feature building on silver tables: daily feature tables, matured labels, training sets.

* ``saas``: the churn features of the SaaS source system (7/30/90-day windows).
* ``lending``: the credit features (payment history, bureau, loan terms) and default labels of
  the lending source system.
* ``labels``: event labels (an event within a horizon of an as-of date), matured only.
* ``training_set``: labels as the entity frame, features through a Feast feature service.
"""
