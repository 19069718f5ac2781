"""Sample microservices (standard library only): `python3 -m sampleapp.api` and `python3 -m sampleapp.web`."""
