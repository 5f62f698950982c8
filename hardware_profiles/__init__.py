"""hardware_profiles"""
