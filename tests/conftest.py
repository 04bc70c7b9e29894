"""Shared by every test folder: putting this folder on ``sys.path`` lets tests in sub-folders
import the helpers beside it (``mainrun``, ``pulse``)."""
