"""Runs compared: the figure of their maps and curves, the window, its thread and the links between the maps."""
