"""Widgets the tabs share: messages, progress, the model picker, option forms, result views."""
