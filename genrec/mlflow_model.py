"""The code MLflow runs to load a registered genrec model (MLflow's models from code): the installed
genrec reads the model's files (JSON and safetensors); nothing is unpickled."""

from mlflow.models import set_model

from genrec.registry import pyfunc_model

set_model(pyfunc_model())
