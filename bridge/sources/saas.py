"""(being written)"""
TYPES: list = []
