#!/usr/bin/env bash
# Runs the live app on a Jetson camera through GStreamer (--gst): a CSI camera through NVIDIA's Argus
# (nvarguscamerasrc, converted by nvvidconv in hardware) or a USB camera through v4l2src. Prints the
# pipeline first; any further arguments go to main.py.
#
#   bash deploy/jetson/camera.sh csi [main.py args...]     # SENSOR_ID=0 WIDTH=1280 HEIGHT=720 FPS=30
#   bash deploy/jetson/camera.sh usb [main.py args...]     # DEVICE=/dev/video0 WIDTH=640 HEIGHT=480 FPS=30
#   bash deploy/jetson/camera.sh csi --print               # the pipeline only
#
# Written for a Jetson; not run on one yet (README.md here says what was checked).
set -euo pipefail
cd "$(dirname "$0")/../.."

PYTHON=${PYTHON:-.venv-jetson/bin/python}
kind=${1:-}
shift || true
case $kind in
  csi)
    : "${SENSOR_ID:=0}" "${WIDTH:=1280}" "${HEIGHT:=720}" "${FPS:=30}"
    pipeline="nvarguscamerasrc sensor-id=$SENSOR_ID ! video/x-raw(memory:NVMM),width=$WIDTH,height=$HEIGHT,framerate=$FPS/1,format=NV12 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! appsink"
    ;;
  usb)
    : "${DEVICE:=/dev/video0}" "${WIDTH:=640}" "${HEIGHT:=480}" "${FPS:=30}"
    pipeline="v4l2src device=$DEVICE ! video/x-raw,width=$WIDTH,height=$HEIGHT,framerate=$FPS/1 ! videoconvert ! appsink"
    ;;
  *)
    echo "usage: camera.sh csi|usb [--print | main.py args...]" >&2
    exit 2
    ;;
esac
echo "$pipeline"
if [[ ${1:-} == --print ]]; then
  exit 0
fi
exec "$PYTHON" main.py --gst "$pipeline" "$@"
