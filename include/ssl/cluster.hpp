#pragma once
// Clustering on features: k-means, PCA whitening, Sinkhorn-Knopp
// self-labelling (what DeepCluster, DeeperCluster and SeLa are built on).
#include "cluster/kmeans.hpp"
#include "cluster/pca.hpp"
#include "cluster/sinkhorn.hpp"
