from tests.hub_server import hf_env, hub_server, recording_hub  # noqa: F401  (fixtures)
