"""The exception a user sees as one sentence: a problem they can fix."""


class UserError(Exception):
    """A problem the user can fix (bad params, missing or broken input); its message is the whole story."""
