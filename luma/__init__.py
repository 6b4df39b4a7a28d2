"""A typed client for kie.ai's "Luma modify video" API, with an offline emulator of it."""
