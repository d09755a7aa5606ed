"""Settings per environment: `local` (manage.py), `test` (pytest), `production` (the image).

`base` holds what all three share and reads the environment (12-factor); see docs/settings.md.
"""
