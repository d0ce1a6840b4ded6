// A preload for the daemon that writes the CPU time of each of its threads
// when it exits, to split the cost per message between the main thread,
// V8's helper threads and libuv's thread pool:
//
//   BENCH_NODE_ARGS="-r $PWD/dist/bench/thread-cpu.js" node dist/bench/relay.js
//
// The file is $BENCH_THREAD_CPU_FILE, or /tmp/posthorn-thread-cpu.txt. Threads
// appear in the order the kernel lists them: the main thread first, then (on
// Node 20) V8's platform workers, then the thread pool once it was used.

import * as fs from 'node:fs';

/** USER_HZ is 100 on Linux: one tick of utime or stime is 10 ms. */
const TICK_MS = 10;

function threadLines(): string[] {
  const lines: string[] = [];
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const stat = fs.readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      const role = Number(tid) === process.pid ? 'main' : 'thread';
      lines.push(`${tid} ${role} user=${Number(fields[11]) * TICK_MS} ms system=${Number(fields[12]) * TICK_MS} ms`);
    } catch {
      // The thread ended while we looked.
    }
  }
  return lines;
}

process.on('exit', () => {
  const file = process.env.BENCH_THREAD_CPU_FILE ?? '/tmp/posthorn-thread-cpu.txt';
  fs.writeFileSync(file, threadLines().join('\n') + '\n');
});
