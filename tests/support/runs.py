"""Run data the tests write into the store themselves."""


def metrics(epoch, loss=1.0):
    """One epoch's metrics as a worker reports them: fixed numbers, `loss` for both losses."""
    return {
        "epoch": epoch,
        "train_loss": loss,
        "test_loss": loss,
        "test_accuracy": 0.5,
        "lr": 0.001,
        "seconds": 0.01,
    }
