"""Fixed file and folder names of the step contract, in one place.

Every step reads and writes only files; a step finds another step's output by these names.
"""

CONFIG_JSON = "config.json"
METRICS_JSON = "metrics.json"
STATS_JSON = "stats.json"
MANIFEST_JSON = "manifest.json"
COMPLETE_MARKER = "_COMPLETE"

# prepare-data
DOMAIN_TABLE = "domain.parquet"
LABELS_JSON = "labels.json"
TASKS_DIR = "tasks"
SIMILARITY_DIR = "similarity"
CORPUS_TABLE = "corpus.parquet"
REJECTED_DIR = "rejected"

# trainers
MODEL_DIR = "model"
CHECKPOINTS_DIR = "checkpoints"
DEEPSPEED_JSON = "deepspeed_config.json"
TRAIN_LOG = "train_log.jsonl"
PREDICTIONS_TABLE = "predictions.parquet"

# extract-embeddings
EMBEDDINGS_DIR = "embeddings"

# train-heads / evaluate-knn / build-report
HEADS_DIR = "heads"
KNN_QUERIES = "queries.parquet"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
PLOTS_DIR = "plots"

SPLITS = ("train", "validation", "test")
ARMS = ("plm", "finetuned", "e2e")
