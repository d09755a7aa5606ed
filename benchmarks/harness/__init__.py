"""The benchmark harness: servers, load, probe sampling, SIGTERM test and reporting."""
