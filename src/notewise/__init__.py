"""notewise: training data, models and transcription for music machine learning.

``notewise.predict(audio, sample_rate, checkpoint)`` and ``notewise.predict_file(path,
checkpoint)`` return a DataFrame of notes (``notewise.pitch.predict``). They are imported on
first use, so that the data commands, which never need torch, do not load it.
"""

__all__ = ["predict", "predict_file"]


def __getattr__(name: str):
    if name in __all__:
        from notewise.pitch import predict as _predict

        return getattr(_predict, name)
    raise AttributeError(f"module 'notewise' has no attribute {name!r}")
