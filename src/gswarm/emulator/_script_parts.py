"""Bash fragments of the emulated ``run_rl_swarm.sh`` (private; assembled by :mod:`gswarm.emulator.script`).

Written from the behaviour described in ``shared/rlswarm/generations.md`` §2.1–§2.4
and §3–§9 (own wording of the code; prompt texts and markers verbatim because a
supervisor must match them). Emulator-only lines are marked ``# GSwarm emulator``.
"""

from __future__ import annotations

HEAD = r"""
ROOT=$PWD
ROOT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

GREEN_TEXT="\033[32m"
BLUE_TEXT="\033[34m"
RED_TEXT="\033[31m"
RESET_TEXT="\033[0m"

echo_green() { echo -e "$GREEN_TEXT$1$RESET_TEXT"; }
echo_blue() { echo -e "$BLUE_TEXT$1$RESET_TEXT"; }
echo_red() { echo -e "$RED_TEXT$1$RESET_TEXT"; }

# GSwarm emulator: the real script expects `python` from an activated venv; this shim execs
# $GSWARM_EMU_PYTHON (or python3) when set or when there is no `python` on PATH.
if [ -n "${GSWARM_EMU_PYTHON:-}" ] || ! command -v python > /dev/null 2>&1; then
    export PATH="$ROOT_DIR/.gswarm-emulator/bin:$PATH"
fi
"""

HIVEMIND_ENV = r"""
export PUB_MULTI_ADDRS
export PEER_MULTI_ADDRS
export HOST_MULTI_ADDRS
export IDENTITY_PATH
PUB_MULTI_ADDRS=${PUB_MULTI_ADDRS:-""}
PEER_MULTI_ADDRS=${PEER_MULTI_ADDRS:-"/ip4/38.101.215.13/tcp/30002/p2p/QmQ2gEXoPJg6iMBSUFWGzAabS2VhnzuS782Y637hGjfsRJ"}
HOST_MULTI_ADDRS=${HOST_MULTI_ADDRS:-"/ip4/0.0.0.0/tcp/38331"}
IDENTITY_PATH=${IDENTITY_PATH:-@DEFAULT_IDENTITY@}
CPU_ONLY=${CPU_ONLY:-""}
HF_TOKEN=${HF_TOKEN:-""}
"""

GENRL_ENV = r"""
export IDENTITY_PATH
export GENSYN_RESET_CONFIG
export CONNECT_TO_TESTNET=true
export ORG_ID
export HF_HUB_DOWNLOAD_TIMEOUT=120
export SWARM_CONTRACT="@CONTRACT@"
export HUGGINGFACE_ACCESS_TOKEN="None"
IDENTITY_PATH=${IDENTITY_PATH:-"$ROOT/swarm.pem"}
GENSYN_RESET_CONFIG=${GENSYN_RESET_CONFIG:-""}
DOCKER=${DOCKER:-""}
CPU_ONLY=${CPU_ONLY:-""}
HF_TOKEN=${HF_TOKEN:-""}
"""

TRAPS = r"""
cleanup() {
    echo_green ">> Shutting down trainer..."
    rm -r "$ROOT_DIR"/modal-login/temp-data/*.json 2> /dev/null || true
    kill -- -$$ 2> /dev/null || true
    exit 0
}
trap cleanup EXIT
"""

ERR_TRAP = r"""
errnotify() {
    echo_red ">> An error was detected while running rl-swarm. See $ROOT/logs for full logs."
}
trap errnotify ERR
"""

BANNER = r"""
echo -e "\033[38;5;224m"
cat << "EOF"
    ██████  ██            ███████ ██     ██  █████  ██████  ███    ███
    ██   ██ ██            ██      ██     ██ ██   ██ ██   ██ ████  ████
    ██████  ██      █████ ███████ ██  █  ██ ███████ ██████  ██ ████ ██
    ██   ██ ██                 ██ ██ ███ ██ ██   ██ ██   ██ ██  ██  ██
    ██   ██ ███████       ███████  ███ ███  ██   ██ ██   ██ ██      ██

    From Gensyn

EOF
"""

TESTNET_PROMPT = r"""
while true; do
    echo -en $GREEN_TEXT
    read -p ">> Would you like to connect to the Testnet? [Y/n] " yn
    echo -en $RESET_TEXT
    yn=${yn:-Y}
    case $yn in
        [Yy]*) CONNECT_TO_TESTNET=@TRUE@ && break ;;
        [Nn]*) CONNECT_TO_TESTNET=@FALSE@ && break ;;
        *) echo ">>> Please answer yes or no." ;;
    esac
done
"""

SWARM_PROMPTS = r"""
while true; do
    echo -en $GREEN_TEXT
    read -p ">> Which swarm would you like to join (Math (A) or Math Hard (B))? [A/b] " ab
    echo -en $RESET_TEXT
    ab=${ab:-A}
    case $ab in
        [Aa]*) USE_BIG_SWARM=false && break ;;
        [Bb]*) USE_BIG_SWARM=true && break ;;
        *) echo ">>> Please answer A or B." ;;
    esac
done
if [ "$USE_BIG_SWARM" = true ]; then SWARM_CONTRACT="$BIG_SWARM_CONTRACT"; else SWARM_CONTRACT="$SMALL_SWARM_CONTRACT"; fi
while true; do
    echo -en $GREEN_TEXT
    read -p ">> How many parameters (in billions)? [0.5, 1.5, 7, 32, 72] " pc
    echo -en $RESET_TEXT
    pc=${pc:-0.5}
    case $pc in
        0.5 | 1.5 | 7 | 32 | 72) PARAM_B=$pc && break ;;
        *) echo ">>> Please answer in [0.5, 1.5, 7, 32, 72]." ;;
    esac
done
"""

LOGIN = r"""
echo "Please login to create an Ethereum Server Wallet"
cd modal-login
@ENV_REWRITE@
echo "Node.js is already installed: $(node -v 2> /dev/null || echo v22.16.0)"
# GSwarm emulator: a loop stands in for `yarn start` (a background child that never exits).
( while :; do sleep 5; done ) >> "@YARN_LOG@" 2>&1 &
SERVER_PID=$!
echo "Started server process: $SERVER_PID"
sleep "${GSWARM_EMU_SERVER_DELAY:-0}"
echo ">> Failed to open http://localhost:3000. Please open it manually."
cd ..
echo_green ">> Waiting for modal userData.json to be created..."
while [ ! -f "modal-login/temp-data/userData.json" ]; do
    sleep "${GSWARM_EMU_POLL:-5}"
done
echo "Found userData.json. Proceeding..."
ORG_ID=$(awk -F'"' 'NF > 2 && !/^[ \t]*[{}]/ { print $2; exit }' modal-login/temp-data/userData.json)
echo "Your ORG_ID is set to: $ORG_ID"
echo "Waiting for API key to become activated..."
while true; do
    # GSwarm emulator: without GSWARM_EMU_MODAL_URL the key counts as activated.
    if [ -n "${GSWARM_EMU_MODAL_URL:-}" ]; then
        STATUS=$(curl -s "$GSWARM_EMU_MODAL_URL/api/get-api-key-status?orgId=$ORG_ID" || true)
    else
        STATUS="activated"
    fi
    if [[ "$STATUS" == "activated" ]]; then
        echo "API key is activated! Proceeding..."
        break
    else
        echo "Waiting for API key to be activated..."
        sleep "${GSWARM_EMU_POLL:-5}"
    fi
done
"""

HF_PROMPT = r"""
echo -en $GREEN_TEXT
read -p ">> Would you like to push models you train in the RL swarm to the Hugging Face Hub? [y/N] " yn
echo -en $RESET_TEXT
yn=${yn:-N}
case $yn in
    [Yy]*) read -p "Enter your Hugging Face access token: " HUGGINGFACE_ACCESS_TOKEN ;;
    [Nn]*) HUGGINGFACE_ACCESS_TOKEN="None" ;;
    *) echo ">>> No answer was given, so NO models will be pushed to Hugging Face Hub" && HUGGINGFACE_ACCESS_TOKEN="None" ;;
esac
"""

MODEL_PROMPT = r"""
echo -en $GREEN_TEXT
read -p ">> Enter the name of the model you want to use in huggingface repo/name format, or press [Enter] to use the default model. " MODEL_NAME
echo -en $RESET_TEXT
if [ -n "$MODEL_NAME" ]; then
    export MODEL_NAME
    echo_green ">> Using model: $MODEL_NAME"
else
    echo_green ">> Using default model from config"
fi
"""

PRG_PROMPT = r"""
echo -en $GREEN_TEXT
read -p ">> Would you like your model to participate in the AI Prediction Market? [Y/n] " yn
echo -en $RESET_TEXT
if [ "$yn" = "n" ] || [ "$yn" = "N" ]; then
    PRG_GAME=false
else
    PRG_GAME=true
    echo_green ">> Playing PRG game: true"
fi
export PRG_GAME
"""

CONFIG_SYNC = r"""
if [ ! -d "$ROOT/configs" ]; then mkdir "$ROOT/configs"; fi
if [ -f "$ROOT/configs/@CFG@" ]; then
    if ! cmp -s "@SRC@" "$ROOT/configs/@CFG@"; then
        if [ -z "$GENSYN_RESET_CONFIG" ]; then
            echo_green ">> Found differences in @CFG@. If you would like to reset to the default, set GENSYN_RESET_CONFIG to a non-empty value."
        else
            echo_green ">> Found differences in @CFG@. Backing up existing config."
            mv "$ROOT/configs/@CFG@" "$ROOT/configs/@CFG@.bak"
            cp "@SRC@" "$ROOT/configs/@CFG@"
        fi
    fi
else
    cp "@SRC@" "$ROOT/configs/@CFG@"
fi
"""

GOOD_LUCK = r"""
echo_green ">> Good luck in the swarm!"
echo_blue ">> And remember to star the repo on GitHub! --> https://github.com/gensyn-ai/rl-swarm"
"""
