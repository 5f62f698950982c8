"""tosim"""
