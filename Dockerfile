# tcpshadow from source on the Debian-based Deno image, with libpcap.
# Run with the host's network and the capabilities capture and raw sockets need:
#   docker run --rm --network host --cap-add NET_RAW --cap-add NET_ADMIN tcpshadow copy -x 80-3.3.3.3:8080 -s 2.2.2.2
FROM denoland/deno:debian-2.9.6
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpcap0.8 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY deno.json deno.lock* ./
COPY main.ts ./
COPY src ./src
COPY ffi ./ffi
RUN deno cache main.ts
# Two malloc arenas instead of one per thread: less malloc at copy's peak with new connections (bench/RESULTS.md).
ENV MALLOC_ARENA_MAX=2
ENTRYPOINT ["deno", "run", "--v8-flags=--max-semi-space-size=1,--heap-growing-percent=50", "--allow-ffi", "--allow-net", "--allow-read", "--allow-write", "--allow-env", "--allow-sys", "--allow-run=setsid", "main.ts"]
