"""Train: every training option grouped, launched through the run manager; live panel; all runs."""

import streamlit as st

from backend import runs, store
from backend.errors import WorkbenchError
from backend.models import list_models
from backend.training.config import ConfigError
from dashboard import live, loaders, widgets
from dashboard.setup import page_file, setup_page
from dashboard.train_form import CLONE_BASE_KEY, clone_base, config_form, split_executor, take_clone

setup_page(
    "Train", "Pick a model and a dataset, adjust the options (each model starts from its recommended values), launch."
)

url = loaders.store_url()
datasets = {path: widgets.dataset_name(path) for path in loaders.datasets(str(loaders.data_root()))}

st.subheader("New run")
if not datasets:
    st.warning(
        f"No dataset under {loaders.data_root()}: generate one on the Data page first.", icon=":material/warning:"
    )
    st.page_link(page_file("data"), label="Go to Data", icon=":material/dataset:")
else:
    models = list_models()
    clone, clone_notes = take_clone(datasets)
    # On a CPU the small CNN is the model that trains in minutes; ResNet50 belongs on a GPU.
    preferred = "resnet50" if loaders.machine_gpus() else "visual_cnn"
    cloned = st.session_state.get(CLONE_BASE_KEY)
    if cloned is not None:
        preferred = cloned["model"]  # kept on every rerun, so the model box does not jump back
    if clone is not None:
        st.info("The form holds a cloned run's options: change what you want, then launch.", icon=":material/content_copy:")
    for note in clone_notes:
        st.warning(f"Clone: {note}.", icon=":material/warning:")
    index = models.index(preferred) if preferred in models else 0
    model = st.selectbox(
        "Model",
        models,
        index=index,
        key="train_model",
        help="resnet50: the team's ResNet50 head; vae_classifier: reconstruction + classification; visual_cnn: small, trains in minutes on a CPU",
    )
    options = config_form(model, datasets, base=clone_base(model))
    if options is not None:
        try:
            options, executor, address = split_executor(options)
            run_id = runs.launch(options, executor=executor, address=address)
        except ConfigError as e:
            st.error(f"Not launched: {e}", icon=":material/error:")
        except (store.StoreError, OSError) as e:
            st.error(f"Not launched: the run could not be queued: {e}", icon=":material/error:")
        except WorkbenchError as e:  # an unknown executor, a malformed Ray address
            st.error(f"Not launched: {e}", icon=":material/error:")
        else:
            live.remember_launch(run_id)
            loaders.clear_run_caches()
            st.success(f"Run #{run_id} launched.", icon=":material/rocket_launch:")

st.subheader("Live")
live.active_runs_panel()

st.subheader("All runs")
live.all_runs_table()
