"""Runs under Home Assistant's own Python (its venv has aiohttp): sends websocket API
commands, prints their results as one JSON list. The test's venv needs no websocket
client this way.

usage: python ha_ws.py URL TOKEN < commands.json   (a JSON list of {"type": ...} objects)
A failed command, or one not answered within TIMEOUT_S, exits 1 with the reason."""
import asyncio
import json
import sys

import aiohttp

TIMEOUT_S = 20


async def run(url, token, commands):
    results = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(url, timeout=TIMEOUT_S) as ws:
            hello = await ws.receive_json(timeout=TIMEOUT_S)
            if hello.get("type") != "auth_required":
                raise SystemExit(f"unexpected greeting: {hello}")
            await ws.send_json({"type": "auth", "access_token": token})
            auth = await ws.receive_json(timeout=TIMEOUT_S)
            if auth.get("type") != "auth_ok":
                raise SystemExit(f"websocket auth refused: {auth}")
            for number, command in enumerate(commands, 1):
                await ws.send_json(dict(command, id=number))
                while True:  # events of earlier subscriptions may come first
                    reply = await ws.receive_json(timeout=TIMEOUT_S)
                    if reply.get("id") == number and reply.get("type") == "result":
                        break
                if not reply.get("success"):
                    raise SystemExit(f"{command['type']} failed: {reply.get('error')}")
                results.append(reply.get("result"))
    return results


def main():
    url, token = sys.argv[1], sys.argv[2]
    commands = json.load(sys.stdin)
    try:
        results = asyncio.run(asyncio.wait_for(run(url, token, commands), TIMEOUT_S * (len(commands) + 2)))
    except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
        raise SystemExit(f"websocket {url}: {type(exc).__name__} {exc}") from None
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
