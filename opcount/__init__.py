"""opcount"""
