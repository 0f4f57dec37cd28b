"""Pure maths of active learning and agreement: no database, no SQL, no Streamlit.

* :mod:`superintendent.al.acquisition`: which unlabelled items to show first
  (entropy, margin, certainty and their batch-aware ``_diverse`` variants);
* :mod:`superintendent.al.diversity`: keeping the top of the queue diverse;
* :mod:`superintendent.al.stopping`: do more labels still help?
* :mod:`superintendent.al.agreement`: how far labellers agree, beyond chance
  (with :mod:`~superintendent.al.ratings` and :mod:`~superintendent.al.disagreement`).

Nothing is imported here, so ``import superintendent.al.acquisition`` stays numpy only.
"""
