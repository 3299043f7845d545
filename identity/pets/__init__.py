"""Cats and dogs: detection, appearance embedding, and the user's re-identification model slot.

`animal` holds what training and scoring handle (no torch); `engine` loads the networks (`load_pet_engine`).
"""
