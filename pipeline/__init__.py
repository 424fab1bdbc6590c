"""Choose how, and how strongly, to regularize a linear model, with the evidence logged."""
