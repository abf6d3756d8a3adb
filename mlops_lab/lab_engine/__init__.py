"""The lab engine: discovers the labs under ``labs/``, runs their start, check, hint, solve and
reset against the running platform, and records the learner's progress outside the platform data.

A lab is a folder ``labs/NN-slug/`` with ``lab.toml`` (what it is), ``README.md`` (the incident as
the learner meets it), ``debrief.md`` (kept apart: cause, detection, prevention, interview
questions) and ``lab.py`` (start, check, hints, solve, reset), written against
:class:`mlops_lab.lab_engine.kit.LabContext`.
"""
