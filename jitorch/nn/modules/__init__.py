"""All nn layers."""
from __future__ import annotations

from .module import Module, register_module_forward_hook, register_module_forward_pre_hook  # noqa: F401
from .container import Sequential, ModuleList, ModuleDict, ParameterList, ParameterDict  # noqa: F401
from .linear import Identity, Linear, Bilinear, LazyLinear, NonDynamicallyQuantizableLinear  # noqa: F401
from .conv import Conv1d, Conv2d, Conv3d, ConvTranspose1d, ConvTranspose2d, ConvTranspose3d  # noqa: F401
from .pooling import (MaxPool1d, MaxPool2d, AvgPool1d, AvgPool2d, AdaptiveAvgPool1d, AdaptiveAvgPool2d,  # noqa: F401
                      AdaptiveMaxPool1d, AdaptiveMaxPool2d, LPPool1d, LPPool2d, MaxPool3d, AvgPool3d)
from .activation import (ReLU, ReLU6, LeakyReLU, PReLU, RReLU, ELU, SELU, CELU, GELU, SiLU, Mish, Sigmoid,  # noqa: F401
                         Tanh, Hardtanh, Hardswish, Hardsigmoid, Softplus, Softsign, Tanhshrink, Softshrink,
                         Hardshrink, Threshold, LogSigmoid, GLU, Softmax, LogSoftmax, Softmin, Softmax2d,
                         MultiheadAttention)
from .normalization import (BatchNorm1d, BatchNorm2d, BatchNorm3d, InstanceNorm1d, InstanceNorm2d,  # noqa: F401
                            InstanceNorm3d, LayerNorm, GroupNorm, RMSNorm, LocalResponseNorm, SyncBatchNorm)
from .misc import (Dropout, Dropout1d, Dropout2d, Dropout3d, AlphaDropout, FeatureAlphaDropout, Flatten,  # noqa: F401
                   Unflatten, ZeroPad1d, ZeroPad2d, ZeroPad3d, ConstantPad1d, ConstantPad2d, ConstantPad3d,
                   ReflectionPad1d, ReflectionPad2d, ReflectionPad3d, ReplicationPad1d, ReplicationPad2d,
                   ReplicationPad3d, CircularPad1d, CircularPad2d, CircularPad3d, Upsample, UpsamplingNearest2d,
                   UpsamplingBilinear2d, PixelShuffle, PixelUnshuffle, PairwiseDistance, CosineSimilarity, Fold,
                   Unfold, ChannelShuffle)
from .sparse import Embedding, EmbeddingBag  # noqa: F401
from .loss import (L1Loss, MSELoss, SmoothL1Loss, HuberLoss, CrossEntropyLoss, NLLLoss, NLLLoss2d,  # noqa: F401
                   BCELoss,
                   BCEWithLogitsLoss, KLDivLoss, CosineEmbeddingLoss, MarginRankingLoss, HingeEmbeddingLoss,
                   SoftMarginLoss, PoissonNLLLoss, GaussianNLLLoss, TripletMarginLoss, TripletMarginWithDistanceLoss,
                   MultiLabelSoftMarginLoss, MultiMarginLoss, MultiLabelMarginLoss)
from .rnn import RNNBase, RNN, LSTM, GRU, RNNCellBase, RNNCell, LSTMCell, GRUCell  # noqa: F401
from .transformer import (TransformerEncoderLayer, TransformerEncoder, TransformerDecoderLayer,  # noqa: F401
                          TransformerDecoder, Transformer)
