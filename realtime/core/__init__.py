"""Core contracts every layer may use: the feature spec, modality names, errors, the clock, the one
thread hand-off, back-off, native-log silencing, back-end names, shipped files and caches."""
