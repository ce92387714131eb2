"""transferlab: how should a ConvNet representation be transferred to a target task?

A study suite reproducing Azizpour et al. (2015), "From Generic to Specific Deep
Representations for Visual Recognition", on an embedded synthetic world.
Modules are organised by pipeline stage; import the one you need.
"""

__version__ = "0.1.0"
