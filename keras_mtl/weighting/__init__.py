"""Task-weighting methods: one per file, registered by name."""

from keras_mtl.weighting.base import Weighting
from keras_mtl.weighting.registry import available, get, register
from keras_mtl.weighting.dtp import DTP
from keras_mtl.weighting.dwa import DWA
from keras_mtl.weighting.equal import Equal
from keras_mtl.weighting.famo import FAMO
from keras_mtl.weighting.fixed import Fixed
from keras_mtl.weighting.gls import GLS
from keras_mtl.weighting.gradnorm import GradNorm
from keras_mtl.weighting.rlw import RLW
from keras_mtl.weighting.uncertainty import Uncertainty
from keras_mtl.weighting.aligned_mtl import AlignedMTL
from keras_mtl.weighting.cagrad import CAGrad
from keras_mtl.weighting.graddrop import GradDrop
from keras_mtl.weighting.gradvac import GradVac
from keras_mtl.weighting.imtl import IMTL
from keras_mtl.weighting.mgda import MGDA
from keras_mtl.weighting.nash_mtl import NashMTL
from keras_mtl.weighting.pcgrad import PCGrad
from keras_mtl.weighting.config import ConFIG
from keras_mtl.weighting.cosmos import COSMOS
from keras_mtl.weighting.cr_mogm import CRMOGM
from keras_mtl.weighting.db_mtl import DBMTL
from keras_mtl.weighting.dualproj import DualProj
from keras_mtl.weighting.excess_mtl import ExcessMTL
from keras_mtl.weighting.fairgrad import FairGrad
from keras_mtl.weighting.imtl_l import IMTLL
from keras_mtl.weighting.krum import Krum
from keras_mtl.weighting.moco import MoCo
from keras_mtl.weighting.pbi import PBI
from keras_mtl.weighting.stch import STCH
from keras_mtl.weighting.trimmed_mean import TrimmedMean
from keras_mtl.weighting.upgrad import UPGrad

__all__ = [
    "AlignedMTL", "CAGrad", "ConFIG", "COSMOS", "CRMOGM", "DBMTL", "DTP", "DualProj", "DWA", "Equal", "ExcessMTL", "FAMO", "FairGrad", "Fixed", "GLS", "GradDrop", "GradNorm",
    "GradVac", "IMTL", "IMTLL", "Krum", "MGDA", "MoCo", "NashMTL", "PBI", "PCGrad", "RLW", "STCH", "TrimmedMean", "Uncertainty", "UPGrad",
    "Weighting", "available", "get", "register",
]
