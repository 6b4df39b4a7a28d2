"""One file per schema revision, named ``<revision>_<what>.py``; revisions are numbered 0001, 0002, ..."""
