// An idle Node app: a timer that does nothing, once a second.
setInterval(() => {}, 1000);
