"""Indonesian complaint classification: text in, labels out (relevance, topic, agency function).

Public entry points: :func:`classifier.registry.load_current`, :func:`classifier.registry.current_version`,
:func:`classifier.registry.load_model` and :class:`classifier.registry.ModelCache` (hot reload).
"""
