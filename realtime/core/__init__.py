"""Core contracts every layer may use: the feature spec, modality names, errors, the clock, the one
thread hand-off, back-off, native-log silencing, back-end names, word tokens and word pieces, sha256
and JSON files, the malloc-arena cap, shipped files and caches."""
