"""Interview practice: a spaced-repetition drill over every question the project teaches.

The bank is plain Markdown in the repository, so adding a question is editing a file: each lab's
debrief (section "Interview questions"), the concept and design questions under
``docs/interview/questions/``, and the follow-up questions that end each system-design
walkthrough in ``docs/interview/``. ``bank`` parses them (each question with the key points a
strong answer covers), ``grading`` turns the points a learner covered into a verdict,
``schedule`` decides what is due (Leitner boxes), ``store`` keeps the learner's boxes and their
last coverage in ``<learner_home>/drill.json``.
"""
