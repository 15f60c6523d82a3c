"""PyTorch modules holding cbp's weights, for the comparisons with PyTorch."""

import numpy as np

# cbp's hidden activations as PyTorch modules (their defaults are cbp's)
TORCH_ACTIVATIONS = {"identity": "Identity", "logistic": "Sigmoid", "tanh": "Tanh",
                     "relu": "ReLU", "leaky_relu": "LeakyReLU", "gelu": "GELU",
                     "silu": "SiLU", "selu": "SELU", "mish": "Mish"}


def linear_from(torch, coef, intercept):
    """torch.nn.Linear (float64) computing a @ coef + intercept, as a cbp
    layer does (coef: (n_in, n_out), as coefs_[l])."""
    linear = torch.nn.Linear(*coef.shape, dtype=torch.float64)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(coef.T.copy()))
        linear.bias.copy_(torch.from_numpy(intercept.copy()))
    return linear


def full_batch_steps(torch, activation, coefs, intercepts, X, y, loss, steps, optimizer,
                     alpha=0.0, lr_of_step=None):
    """PyTorch's (coefs, intercepts) after ``steps`` full-batch steps of the
    float64 network with cbp's ``activation`` from coefs, intercepts.

    loss(out, target) -> the summed loss (divided by n here); L2 as 0.5 alpha
    sum ||W||^2 / n, scikit-learn's scaling; optimizer(parameters) -> a
    torch.optim optimizer; lr_of_step(step): the rate of each step, if it
    changes."""
    layers = []
    for l, (coef, intercept) in enumerate(zip(coefs, intercepts)):
        layers.append(linear_from(torch, coef, intercept))
        if l < len(coefs) - 1:
            layers.append(getattr(torch.nn, TORCH_ACTIVATIONS[activation])())
    net = torch.nn.Sequential(*layers)
    opt = optimizer(net.parameters())
    X_t = torch.from_numpy(X)
    y_t = torch.from_numpy(y.reshape(len(y), -1).astype(np.float64))
    n = len(X)
    linears = [m for m in net if isinstance(m, torch.nn.Linear)]
    for step in range(steps):
        if lr_of_step is not None:
            for group in opt.param_groups:
                group["lr"] = lr_of_step(step)
        opt.zero_grad()
        J = loss(net(X_t), y_t) / n
        if alpha:
            J = J + 0.5 * alpha * sum((m.weight ** 2).sum() for m in linears) / n
        J.backward()
        opt.step()
    return ([m.weight.detach().numpy().T for m in linears],
            [m.bias.detach().numpy() for m in linears])
