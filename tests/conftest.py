import os

os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("PYTHONWARNINGS", "ignore")
