"""One module per provider: its documented request, its documented answer, its own way of refusing."""

from . import bfl, dashscope, gemini, openai, phota, reve

PROVIDERS = {"gemini": gemini, "openai": openai, "dashscope": dashscope, "bfl": bfl, "reve": reve, "phota": phota}
