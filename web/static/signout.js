// signout.js: signing out on this device forgets the copies of rooms the
// workshop pages keep on it (the findings of a group as last seen, its
// drafts included, and the changes saved but not yet seen back): they
// were the person's, and a shared tablet goes on to another person.
// Changes typed and not yet saved stay, to be sent when their person
// signs in again. The time of the sign-out is kept on the
// device: a workshop page open in another tab, which would write its copy
// back as it goes, reads it (see save in live.js).
"use strict";
document.addEventListener("submit", function (e) {
  var form = e.target;
  if (!form || form.getAttribute("action") !== "/auth/logout") return;
  try {
    localStorage.setItem("rapporteur:signedout", String(Date.now()));
  } catch (err) {} // storage full: the copies still go
  try {
    var keys = [];
    for (var i = 0; i < localStorage.length; i++) {
      var k = localStorage.key(i);
      if (k && k.indexOf("rapporteur:") === 0 && /:(state2?|acked|saved)$/.test(k)) keys.push(k);
    }
    keys.forEach(function (k) { localStorage.removeItem(k); });
  } catch (err) {}
  // And the pages the service worker keeps (it forgets them too as it
  // sees the sign-out, when it controls this page).
  try { if (window.caches) caches.delete("rapporteur-pages-v1"); } catch (err) {} // sw.js's CACHE
});
