"""List the registered models and the report each comes from: python -m stages.architectures"""

from stages.architectures import list_models, model_source

if __name__ == "__main__":
    names = list_models()
    width = max(map(len, names))
    for name in names:
        print(f"{name:<{width}}  {model_source(name)}")
