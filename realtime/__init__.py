"""The live recognizer (capture, front-ends, window, engines, decision, outputs, app, command line) and the
encoders' offline tools (``realtime.offline``, ``realtime.extract``); layers: docs/architecture.md."""
