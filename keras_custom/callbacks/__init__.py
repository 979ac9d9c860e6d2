"""Callbacks of keras_custom."""

from keras_custom.callbacks.backup_and_restore import BackupAndRestore
from keras_custom.callbacks.terminate_on_nan import TerminateOnNaN

__all__ = ["BackupAndRestore", "TerminateOnNaN"]
