"""Loads models saved by tests/test_cross_backend.py under another backend.

Run as `KERAS_BACKEND=<backend> python cross_backend_load.py DIR`: reads
DIR/model.keras, DIR/deployed.keras and DIR/data.npz, writes DIR/loaded.npz
with the predictions, decisions and evaluated loss under this backend.
"""

import os
import sys

import keras
import numpy as np

import kimbalance  # noqa: F401  (registers the serializable objects)


def main(directory):
    data = np.load(os.path.join(directory, "data.npz"))
    x, y = data["x"], data["y"]
    model = keras.saving.load_model(os.path.join(directory, "model.keras"))
    deployed = keras.saving.load_model(os.path.join(directory, "deployed.keras"))
    loss = model.evaluate(x, y, batch_size=len(x), verbose=0)
    np.savez(
        os.path.join(directory, "loaded.npz"),
        backend=keras.backend.backend(),
        probs=model.predict(x, batch_size=len(x), verbose=0),
        decisions=deployed.predict(x, batch_size=len(x), verbose=0),
        loss=np.float64(loss),
        loss_class=type(model.loss).__name__,
        layer_classes=np.array(sorted({type(layer).__name__
                                       for layer in deployed.layers})),
    )


if __name__ == "__main__":
    main(sys.argv[1])
