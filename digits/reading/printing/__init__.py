"""Printed lines are printing, not ink: box frames, ruled and squared paper, writing lines.

lines (candidates) → judge (which are printing) → remove (from the contrast map).
"""
