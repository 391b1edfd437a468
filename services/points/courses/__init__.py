"""Courses, credits (単位), certifications and signed certificates."""
