"""Write the unit modules from units.BACKWARD_UNITS and FORWARD_UNITS (python -m tapegrad._kernels.units)."""
from . import write_units

for path in write_units():
    print("wrote", path)
