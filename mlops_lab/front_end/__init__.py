"""The loan front end: a simulated client application of the platform.

Production platforms serve someone: here, a front end that sends loan applications to serving and,
later, what became of them (feedback labels). It runs as a platform service while a lab is in
progress, so incidents happen to live traffic without a second terminal, and it has its own
configuration file that a lab can break and a learner can fix, like any upstream system.
"""
