"""PyTorch modules holding cbp's weights, for the comparisons with PyTorch."""


def linear_from(torch, coef, intercept):
    """torch.nn.Linear (float64) computing a @ coef + intercept, as a cbp
    layer does (coef: (n_in, n_out), as coefs_[l])."""
    linear = torch.nn.Linear(*coef.shape, dtype=torch.float64)
    with torch.no_grad():
        linear.weight.copy_(torch.from_numpy(coef.T.copy()))
        linear.bias.copy_(torch.from_numpy(intercept.copy()))
    return linear
